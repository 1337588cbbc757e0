import FuzzHarness

// libFuzzer's driver on the npy reader; command-line flags as libFuzzer documents them.
FuzzHarness.start(.npy)
