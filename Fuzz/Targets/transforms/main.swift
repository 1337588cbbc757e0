import FuzzHarness

// libFuzzer's driver on the transforms reader; command-line flags as libFuzzer documents them.
FuzzHarness.start(.transforms)
