"""The spec language: models, the positioned YAML loader, profiles and the JSON Schema."""
