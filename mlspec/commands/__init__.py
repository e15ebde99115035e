"""The command line: one thin module per command (parse options, call the library, print, exit
code). ``app.py`` is the typer app; ``checked.py`` is what every command does with a spec first."""
