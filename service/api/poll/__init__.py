"""The device poll fast path: `GET /v1/deployments/{name}/manifest` answered from memory.

Devices poll forever, so this route sets how many devices one API process serves. A poll
whose token and manifest are known is answered without the ORM, the router or a database
query of its own (middleware.py); anything else (a first sighting, an unknown or revoked
token, a device of another deployment, an unknown deployment) falls through to the regular
route, which answers it, errors included.

Correctness across API processes that share one database rests on one rule (gate.py): a
poll is answered only after a read of the poll generation counters
(infra/store/poll_generation.py) that *started after the poll arrived*. Promotions,
widenings, rollbacks and revocations bump those counters in their own transaction, so any
change committed before a poll arrives is seen by that poll, whichever process committed
it. Concurrent polls share one read, which is what makes it cheap.
"""
