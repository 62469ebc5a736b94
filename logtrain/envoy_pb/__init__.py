"""Message classes generated from proto/ by scripts/gen-envoy-protos.sh (do not edit)."""
