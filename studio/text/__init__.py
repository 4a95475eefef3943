"""Local LLM client, prompt building, ad copy and hashtags."""
