"""The teller API for CIF, static data and accounts: one plain ``APIView`` per operation."""
