"""The bridge: ChirpStack MQTT <-> Kafka, the only door between ChirpStack and the streams."""
