"""The board: SSH connection, host keys, passwords, the SSH executor and its
transfers (SFTP or SCP), remote scripts (scripts/*.sh), the remote lock, and
choosing which boards a command acts on."""
