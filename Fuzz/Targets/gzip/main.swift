import FuzzHarness

// libFuzzer's driver on the gzip reader; command-line flags as libFuzzer documents them.
FuzzHarness.start(.gzip)
