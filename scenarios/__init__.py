"""Built-in scenario files, their schema and loader."""
