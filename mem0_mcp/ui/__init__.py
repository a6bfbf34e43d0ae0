"""The local page (``mem0-mcp ui``): memories for a person to see, search, correct, delete and
restore, and a scope's graph. Sits beside server/ and cli/: it uses the engine, never MCP."""
