"""What a device receives: the ONNX export and its parity check, the metadata written into
the file, MACs counted from the graph, and the INT8 variant with its fp32 layers."""
