"""OpenTelemetry for every fedstream process: traces across Kafka hops, metrics on a Prometheus endpoint."""
