"""The HTTP service: one stateless FastAPI app (`create_app`) for the web page, OpenAI clients and webhooks."""
