"""Intake: the aggregator's side of the broker.

- `mqtt_session`: the two broker connections (a persistent-session subscriber, and a publisher
  for acks, alerts and refusals), with capped, jittered reconnects; each is an
  `intake_connection` (envnet's own MQTT 3.1.1 client, one async context manager, its packets
  in `mqtt_packets`).
- `checks`: a raw message in, an accepted batch or a counted refusal out (the contract and the
  fleet inventory). Pure.
- `seqs`: which batches, by (node, journal, seq) and content, are stored or in flight, so a
  resend is acked without being written twice, and an ack always means stored. Pure.
- `refusals` and `refusal_notices`: counting refused input, and telling the refused node why.
- `fleet_watch`: hot reload of the fleet inventory (on SIGHUP, or when the file changes); a
  file that does not load is refused and counted, and the inventory in force stays.
"""
