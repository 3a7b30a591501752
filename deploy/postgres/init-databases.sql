-- One database per component (database per service); each component migrates its own.
CREATE DATABASE schema_registry;
CREATE DATABASE users;
CREATE DATABASE catalog;
CREATE DATABASE inventory;
CREATE DATABASE orders;
CREATE DATABASE payments;
