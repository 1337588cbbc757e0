import FuzzHarness

// libFuzzer's driver on the png reader; command-line flags as libFuzzer documents them.
FuzzHarness.start(.png)
