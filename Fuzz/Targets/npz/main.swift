import FuzzHarness

// libFuzzer's driver on the npz reader; command-line flags as libFuzzer documents them.
FuzzHarness.start(.npz)
