"""Tests of the private Tor network: onion keys, the network itself, and the demo markets as onions."""
