"""A fake OpenAI-style key for the tests that check no secret reaches a message. It is joined from parts so
that no key-shaped literal sits in the source (secret scanners would flag one)."""

FAKE_KEY = "sk-proj-" + "TEST" + "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
