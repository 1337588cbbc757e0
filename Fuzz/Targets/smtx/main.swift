import FuzzHarness

// libFuzzer's driver on the smtx reader; command-line flags as libFuzzer documents them.
FuzzHarness.start(.smtx)
