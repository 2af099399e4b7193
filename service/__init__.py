"""Marketing Actions: backend of a Power Platform custom connector for marketing-automation platforms."""

__version__ = "0.1.0"
