import FuzzHarness

// libFuzzer's driver on the instant-ngp config reader (vkk train --config); command-line flags as libFuzzer documents them.
FuzzHarness.start(.instantNGPConfig)
