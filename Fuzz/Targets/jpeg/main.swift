import FuzzHarness

// libFuzzer's driver on the jpeg reader; command-line flags as libFuzzer documents them.
FuzzHarness.start(.jpeg)
