"""The envnet contract between edge and aggregator: message types, topics, vocabulary."""
