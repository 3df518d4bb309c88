"""The gRPC edge: one servicer per service, interceptors, message conversion, status mapping."""
