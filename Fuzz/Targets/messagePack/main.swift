import FuzzHarness

// libFuzzer's driver on the messagePack reader; command-line flags as libFuzzer documents them.
FuzzHarness.start(.messagePack)
