"""The fault suite: kill, pause and restart real processes and servers during real builds, feed
hostile input, and assert what a user sees (every build terminal once, nothing lost, no 5xx)."""
