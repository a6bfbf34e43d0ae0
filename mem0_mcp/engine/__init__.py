"""The memory engine: the ``Memory`` facade and its parts. Knows nothing of MCP."""
