"""The event-registration service (seed 004): users, events with a capacity and an
optional waitlist, registrations; its MySQL schema, contract, repositories, service
and HTTP API.

It is the toolkit's second application, built on the public API only: it starts on
MySQL and moves, phase by phase, to the seed's single DynamoDB table.
"""

from pathlib import Path

REGISTRATION_CONTRACT = Path(__file__).parent / "contract.yaml"
