"""Mail: build messages, talk SMTP, and deliver an issue through the ledger."""
