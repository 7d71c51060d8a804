"""RAG service: knowledge products in PostgreSQL + pgvector, hybrid retrieval, grounded answers."""
