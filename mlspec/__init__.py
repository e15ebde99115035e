"""mlspec: one declarative ML project file, compiled to everything production needs."""

__version__ = "0.1.0"
