import FuzzHarness

// libFuzzer's driver on the cameraPath reader; command-line flags as libFuzzer documents them.
FuzzHarness.start(.cameraPath)
