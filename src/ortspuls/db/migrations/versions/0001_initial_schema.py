"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 03:30:59.407612
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import ortspuls.db.types
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table('tenants',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('ags', sa.String(length=12), nullable=True),
    sa.Column('created_at', ortspuls.db.types.Timestamp(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['tenants.id'], name=op.f('fk_tenants_parent_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants')),
    sa.UniqueConstraint('slug', name=op.f('uq_tenants_slug'))
    )
    op.create_table('api_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', ortspuls.db.types.Timestamp(), nullable=False),
    sa.Column('revoked_at', ortspuls.db.types.Timestamp(), nullable=True),
    sa.Column('last_used_at', ortspuls.db.types.Timestamp(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_api_keys_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash')),
    sa.UniqueConstraint('tenant_id', 'name', name='uq_api_keys_tenant_name')
    )
    op.create_table('features',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('encoding_type', sa.Text(), nullable=False),
    sa.Column('feature', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('feature_geom', ortspuls.db.types.Geometry(), nullable=True),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('generated_from_location_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_features_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_features'))
    )
    with op.batch_alter_table('features', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_features_generated_from_location_id'), ['generated_from_location_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_features_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('locations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('encoding_type', sa.Text(), nullable=False),
    sa.Column('location', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('location_geom', ortspuls.db.types.Geometry(), nullable=True),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_locations_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_locations'))
    )
    with op.batch_alter_table('locations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_locations_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('observed_properties',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('definition', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_observed_properties_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_observed_properties'))
    )
    with op.batch_alter_table('observed_properties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_observed_properties_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('sensors',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('encoding_type', sa.Text(), nullable=False),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_sensors_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sensors'))
    )
    with op.batch_alter_table('sensors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sensors_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('things',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('is_public', sa.Boolean(), server_default='1', nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_things_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_things'))
    )
    with op.batch_alter_table('things', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_things_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('datastreams',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('unit_of_measurement', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('observation_type', sa.Text(), nullable=False),
    sa.Column('observed_area', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('observed_area_geom', ortspuls.db.types.Geometry(), nullable=True),
    sa.Column('phenomenon_time_start', ortspuls.db.types.Timestamp(), nullable=True),
    sa.Column('phenomenon_time_end', ortspuls.db.types.Timestamp(), nullable=True),
    sa.Column('result_time_start', ortspuls.db.types.Timestamp(), nullable=True),
    sa.Column('result_time_end', ortspuls.db.types.Timestamp(), nullable=True),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('thing_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sensor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('observed_property_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('is_public', sa.Boolean(), server_default='1', nullable=False),
    sa.ForeignKeyConstraint(['observed_property_id'], ['observed_properties.id'], name=op.f('fk_datastreams_observed_property_id_observed_properties'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sensor_id'], ['sensors.id'], name=op.f('fk_datastreams_sensor_id_sensors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_datastreams_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['thing_id'], ['things.id'], name=op.f('fk_datastreams_thing_id_things'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datastreams'))
    )
    with op.batch_alter_table('datastreams', schema=None) as batch_op:
        batch_op.create_index('ix_datastreams_observed_property_id', ['observed_property_id'], unique=False)
        batch_op.create_index('ix_datastreams_sensor_id', ['sensor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_datastreams_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_datastreams_thing_id', ['thing_id'], unique=False)

    op.create_table('historical_locations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('time', ortspuls.db.types.Timestamp(), nullable=False),
    sa.Column('thing_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_historical_locations_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['thing_id'], ['things.id'], name=op.f('fk_historical_locations_thing_id_things'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_historical_locations'))
    )
    with op.batch_alter_table('historical_locations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_historical_locations_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_historical_locations_thing_id', ['thing_id'], unique=False)

    op.create_table('multi_datastreams',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('unit_of_measurements', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('observation_type', sa.Text(), nullable=False),
    sa.Column('multi_observation_data_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('observed_area', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('observed_area_geom', ortspuls.db.types.Geometry(), nullable=True),
    sa.Column('phenomenon_time_start', ortspuls.db.types.Timestamp(), nullable=True),
    sa.Column('phenomenon_time_end', ortspuls.db.types.Timestamp(), nullable=True),
    sa.Column('result_time_start', ortspuls.db.types.Timestamp(), nullable=True),
    sa.Column('result_time_end', ortspuls.db.types.Timestamp(), nullable=True),
    sa.Column('properties', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('thing_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sensor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('is_public', sa.Boolean(), server_default='1', nullable=False),
    sa.ForeignKeyConstraint(['sensor_id'], ['sensors.id'], name=op.f('fk_multi_datastreams_sensor_id_sensors'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_multi_datastreams_tenant_id_tenants')),
    sa.ForeignKeyConstraint(['thing_id'], ['things.id'], name=op.f('fk_multi_datastreams_thing_id_things'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_multi_datastreams'))
    )
    with op.batch_alter_table('multi_datastreams', schema=None) as batch_op:
        batch_op.create_index('ix_multi_datastreams_sensor_id', ['sensor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_multi_datastreams_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_multi_datastreams_thing_id', ['thing_id'], unique=False)

    op.create_table('thing_locations',
    sa.Column('thing_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('location_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_thing_locations_location_id_locations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['thing_id'], ['things.id'], name=op.f('fk_thing_locations_thing_id_things'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('thing_id', 'location_id', name=op.f('pk_thing_locations'))
    )
    with op.batch_alter_table('thing_locations', schema=None) as batch_op:
        batch_op.create_index('ix_thing_locations_location_id', ['location_id'], unique=False)

    op.create_table('historical_location_locations',
    sa.Column('location_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('historical_location_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['historical_location_id'], ['historical_locations.id'], name=op.f('fk_historical_location_locations_historical_location_id_historical_locations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_historical_location_locations_location_id_locations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('location_id', 'historical_location_id', name=op.f('pk_historical_location_locations'))
    )
    with op.batch_alter_table('historical_location_locations', schema=None) as batch_op:
        batch_op.create_index('ix_historical_location_locations_historical_location_id', ['historical_location_id'], unique=False)

    op.create_table('multi_datastream_observed_properties',
    sa.Column('observed_property_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('multi_datastream_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.SmallInteger(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['multi_datastream_id'], ['multi_datastreams.id'], name=op.f('fk_multi_datastream_observed_properties_multi_datastream_id_multi_datastreams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['observed_property_id'], ['observed_properties.id'], name=op.f('fk_multi_datastream_observed_properties_observed_property_id_observed_properties'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('observed_property_id', 'multi_datastream_id', name=op.f('pk_multi_datastream_observed_properties'))
    )
    with op.batch_alter_table('multi_datastream_observed_properties', schema=None) as batch_op:
        batch_op.create_index('ix_multi_datastream_observed_properties_multi_datastream_id', ['multi_datastream_id'], unique=False)

    is_postgresql = op.get_bind().dialect.name == "postgresql"
    if is_postgresql:
        # Observations are partitioned by month of phenomenonTime (ortspuls.db.partitions): the
        # primary key must contain the partition key, and ids come from one sequence.
        op.execute("CREATE SEQUENCE observations_id_seq AS bigint")
        observation_id = sa.Column('id', sa.BigInteger(), nullable=False,
                                   server_default=sa.text("nextval('observations_id_seq')"))
        observation_pk = sa.PrimaryKeyConstraint('id', 'phenomenon_time_start', name=op.f('pk_observations'))
        partitioning = {"postgresql_partition_by": "RANGE (phenomenon_time_start)"}
    else:
        observation_id = sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False)
        observation_pk = sa.PrimaryKeyConstraint('id', name=op.f('pk_observations'))
        partitioning = {}
    op.create_table('observations',
    observation_id,
    sa.Column('tenant_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('phenomenon_time_start', ortspuls.db.types.Timestamp(), nullable=False),
    sa.Column('phenomenon_time_end', ortspuls.db.types.Timestamp(), nullable=True),
    sa.Column('result_time', ortspuls.db.types.Timestamp(), nullable=True),
    sa.Column('result_type', sa.SmallInteger(), nullable=False),
    sa.Column('result_number', sa.Float(), nullable=True),
    sa.Column('result_string', sa.Text(), nullable=True),
    sa.Column('result_json', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('result_quality', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('valid_time_start', ortspuls.db.types.Timestamp(), nullable=True),
    sa.Column('valid_time_end', ortspuls.db.types.Timestamp(), nullable=True),
    sa.Column('parameters', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('datastream_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('multi_datastream_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('feature_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['datastream_id'], ['datastreams.id'], name=op.f('fk_observations_datastream_id_datastreams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['feature_id'], ['features.id'], name=op.f('fk_observations_feature_id_features'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['multi_datastream_id'], ['multi_datastreams.id'], name=op.f('fk_observations_multi_datastream_id_multi_datastreams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_observations_tenant_id_tenants')),
    observation_pk,
    **partitioning,
    )
    if is_postgresql:
        op.execute("ALTER SEQUENCE observations_id_seq OWNED BY observations.id")
        # Rows of a month without its own partition land here until `ensure_partitions` moves
        # them; monthly partitions are created at migration, at start and by the writer.
        op.execute("CREATE TABLE observations_default PARTITION OF observations DEFAULT")
    with op.batch_alter_table('observations', schema=None) as batch_op:
        batch_op.create_index('ix_observations_datastream_time', ['datastream_id', 'phenomenon_time_start', 'id'], unique=False)
        batch_op.create_index('ix_observations_feature_id', ['feature_id'], unique=False)
        batch_op.create_index('ix_observations_multi_datastream_time', ['multi_datastream_id', 'phenomenon_time_start', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_observations_tenant_id'), ['tenant_id'], unique=False)

    tenants = sa.table("tenants", sa.column("id"), sa.column("slug"), sa.column("name"),
                       sa.column("created_at", ortspuls.db.types.Timestamp()))
    op.bulk_insert(tenants, [{"id": 1, "slug": "default", "name": "Default",
                              "created_at": datetime.now(UTC)}])
    if op.get_bind().dialect.name == "postgresql":
        for table, column in (("locations", "location_geom"), ("features", "feature_geom"),
                              ("datastreams", "observed_area_geom"),
                              ("multi_datastreams", "observed_area_geom")):
            op.create_index(f"ix_{table}_{column}", table, [column], postgresql_using="gist")


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('observations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_observations_tenant_id'))
        batch_op.drop_index('ix_observations_multi_datastream_time')
        batch_op.drop_index('ix_observations_feature_id')
        batch_op.drop_index('ix_observations_datastream_time')

    op.drop_table('observations')
    with op.batch_alter_table('multi_datastream_observed_properties', schema=None) as batch_op:
        batch_op.drop_index('ix_multi_datastream_observed_properties_multi_datastream_id')

    op.drop_table('multi_datastream_observed_properties')
    with op.batch_alter_table('historical_location_locations', schema=None) as batch_op:
        batch_op.drop_index('ix_historical_location_locations_historical_location_id')

    op.drop_table('historical_location_locations')
    with op.batch_alter_table('thing_locations', schema=None) as batch_op:
        batch_op.drop_index('ix_thing_locations_location_id')

    op.drop_table('thing_locations')
    with op.batch_alter_table('multi_datastreams', schema=None) as batch_op:
        batch_op.drop_index('ix_multi_datastreams_thing_id')
        batch_op.drop_index(batch_op.f('ix_multi_datastreams_tenant_id'))
        batch_op.drop_index('ix_multi_datastreams_sensor_id')

    op.drop_table('multi_datastreams')
    with op.batch_alter_table('historical_locations', schema=None) as batch_op:
        batch_op.drop_index('ix_historical_locations_thing_id')
        batch_op.drop_index(batch_op.f('ix_historical_locations_tenant_id'))

    op.drop_table('historical_locations')
    with op.batch_alter_table('datastreams', schema=None) as batch_op:
        batch_op.drop_index('ix_datastreams_thing_id')
        batch_op.drop_index(batch_op.f('ix_datastreams_tenant_id'))
        batch_op.drop_index('ix_datastreams_sensor_id')
        batch_op.drop_index('ix_datastreams_observed_property_id')

    op.drop_table('datastreams')
    with op.batch_alter_table('things', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_things_tenant_id'))

    op.drop_table('things')
    with op.batch_alter_table('sensors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sensors_tenant_id'))

    op.drop_table('sensors')
    with op.batch_alter_table('observed_properties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_observed_properties_tenant_id'))

    op.drop_table('observed_properties')
    with op.batch_alter_table('locations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_locations_tenant_id'))

    op.drop_table('locations')
    with op.batch_alter_table('features', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_features_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_features_generated_from_location_id'))

    op.drop_table('features')
    op.drop_table('api_keys')
    op.drop_table('tenants')
    # ### end Alembic commands ###
