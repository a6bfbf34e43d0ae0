"""The MCP layer: the only package that imports the SDK."""
