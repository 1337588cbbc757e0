import FuzzHarness

// libFuzzer's driver on the snapshot reader; command-line flags as libFuzzer documents them.
FuzzHarness.start(.snapshot)
