"""The demo world: people, mailings and their responses, written as each source system delivers them."""
