"""mem0-mcp: long-term memory for AI agents over the Model Context Protocol.

Importing this package is cheap: stores, models and the MCP SDK load on first use.
"""

__version__ = "0.1.0"
