"""Confluent's own Python serializers, run against eventmart's schema registry.

Used by the conformance test (confluent_clients.rs): what this writes must decode with the
eventmart codec, and what the codec writes must read back here.

    confluent_client.py serialize   REGISTRY_URL TOPIC SCHEMA_FILE  < record.json  > hex
    confluent_client.py deserialize REGISTRY_URL TOPIC              < hex          > record.json

Records are fastavro's shape: timestamps as epoch milliseconds, enums as symbols, optional
fields as a plain value or null.
"""

import datetime
import json
import sys

from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def to_json(value):
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    raise TypeError(f"cannot encode {type(value)}")


def main():
    mode, url, topic = sys.argv[1:4]
    client = SchemaRegistryClient({"url": url})
    context = SerializationContext(topic, MessageField.VALUE)
    if mode == "serialize":
        with open(sys.argv[4]) as f:
            schema = f.read()
        serializer = AvroSerializer(
            client, schema, conf={"subject.name.strategy": topic_record_subject_name_strategy}
        )
        sys.stdout.write(serializer(json.load(sys.stdin), context).hex())
    elif mode == "deserialize":
        deserializer = AvroDeserializer(client)
        record = deserializer(bytes.fromhex(sys.stdin.read().strip()), context)
        sys.stdout.write(json.dumps(record, default=to_json, sort_keys=True))
    else:
        sys.exit(f"unknown mode {mode!r}: use serialize or deserialize")


if __name__ == "__main__":
    main()
