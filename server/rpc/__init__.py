"""The gRPC face: the servicer, request validation, protobuf conversion and the stream sessions."""
