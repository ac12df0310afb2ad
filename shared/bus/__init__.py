"""The bus: events table → JetStream (relay) and JetStream → workers (consumers)."""
