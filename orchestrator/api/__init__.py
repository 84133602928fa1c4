"""The orchestrator's public gRPC API: authentication, quotas, the service and the server."""
