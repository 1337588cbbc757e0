import FuzzHarness

// libFuzzer's driver on the matrixMarket reader; command-line flags as libFuzzer documents them.
FuzzHarness.start(.matrixMarket)
