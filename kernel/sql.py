"""Hot statements compiled once and planned once, not at every call.

Django compiles a queryset at every call (0.6 ms of CPU for a chat with its contact and number)
and binds parameters on the client, so PostgreSQL parses and plans every statement again (for a
page of chats, planning cost as much as running it). ``fetchall_prepared`` runs a statement as a
prepared statement of the pooled connection (psycopg prepares it on first use and keeps up to
100 per connection); ``CompiledQuery`` also keeps the compiled SQL of a queryset per thread and
connection, ``insert`` the INSERT of a model (compiling it was two thirds of an API send's
``Message.objects.create``) and ``insert_many`` a model's bulk INSERT (compiling it, value by
value, was a fifth of the inbound drain's CPU). All go through Django's cursor wrappers (query
logging, ``execute_wrapper``).
"""

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.models.signals import post_save, pre_save
from django.db.models.sql import InsertQuery


def fetchall_prepared(sql: str, params: list, using: str = "default") -> list[tuple]:
    """The rows of ``sql`` (``%s`` placeholders); prepared on PostgreSQL, plain elsewhere."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold != 0:
        # Only server-binding cursors prepare (Django's own never do): 0 = at first use.
        raw.prepare_threshold = 0
    server_binding = psycopg.Cursor(raw)
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    with wrap(server_binding) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    log = connection.queries_log
    if connection.queries_logged and log and log[-1]["sql"] is None:
        # Django reads the statement back from a client-binding cursor only.
        log[-1]["sql"] = connection.ops.compose_sql(sql, params)
    return rows


_insert_sql: dict[type[Model], str] = {}


def _inserted_fields(meta) -> list:
    """The fields an INSERT of the model names, as Django's ``save`` and ``bulk_create`` do."""
    return [
        field
        for field in meta.local_concrete_fields
        if field is not meta.auto_field and not field.generated
    ]


def _insert_as_sql(model: type[Model], fields: list, objs: list, using: str) -> tuple[str, list]:
    """Django's ``INSERT … RETURNING pk`` of ``objs`` (runs their fields' ``pre_save``)."""
    query = InsertQuery(model)
    query.insert_values(fields, objs)
    compiler = query.get_compiler(using=using)
    compiler.returning_fields = [model._meta.pk]
    ((sql, params),) = compiler.as_sql()
    return sql, params


def insert(instance: Model, using: str = "default") -> Model:
    """Insert the new ``instance`` as ``save(force_insert=True)`` (``objects.create``) would:
    the same column values (defaults, ``auto_now_add``, foreign keys) and its primary key set
    from the database; on PostgreSQL with the model's INSERT compiled once and run as a
    prepared statement. Model signals are not sent, so a model with ``pre_save`` or
    ``post_save`` receivers (or a parent model, a database default, a primary key of its own)
    takes Django's own ``save``, as does every other database."""
    prepared = _insert_prepared(instance, using)
    if prepared is None:
        instance.save(force_insert=True, using=using)
        return instance
    sql, values = prepared
    (pk,) = fetchall_prepared(sql, values, using)[0]
    _inserted(instance, pk, using)
    return instance


def insert_then(instance: Model, statement: str, params: list, using: str = "default") -> list:
    """``insert(instance)`` and then ``statement`` (an ``UPDATE … RETURNING``, say), in one
    round trip where ``insert`` runs its prepared INSERT: the INSERT is a ``WITH`` query of
    ``statement``, which sees the snapshot from before it (it must not read the new row).
    Returns ``statement``'s rows; their first column must never be NULL."""
    prepared = _insert_prepared(instance, using)
    if prepared is None:
        instance.save(force_insert=True, using=using)
        return fetchall_prepared(statement, params, using)
    sql, values = prepared
    combined = (
        f"WITH inserted AS ({sql}), then_rows AS ({statement}) "  # noqa: S608
        "SELECT inserted.*, then_rows.* FROM inserted LEFT JOIN then_rows ON TRUE"
    )
    rows = fetchall_prepared(combined, [*values, *params], using)
    _inserted(instance, rows[0][0], using)
    return [row[1:] for row in rows if row[1] is not None]


def _insert_prepared(instance: Model, using: str) -> tuple[str, list] | None:
    """The prepared INSERT of ``instance`` and its values, or None where Django's ``save``
    must do it (see ``insert``)."""
    model, meta = type(instance), instance._meta
    connection = connections[using]
    if (
        connection.vendor != "postgresql"
        or meta.parents
        or instance.pk is not None
        or list(meta.db_returning_fields) != [meta.pk]
        or pre_save.has_listeners(model)
        or post_save.has_listeners(model)
    ):
        return None
    instance._prepare_related_fields_for_save(operation_name="save")
    fields = _inserted_fields(meta)
    values = [field.pre_save(instance, True) for field in fields]
    if any(hasattr(value, "resolve_expression") for value in values):  # e.g. a database default
        return None
    sql = _insert_sql.get(model)
    if sql is None:
        sql = _insert_compile(instance, fields, using)
        values = [field.pre_save(instance, True) for field in fields]  # compiling ran pre_save
    return sql, [
        field.get_db_prep_save(v, connection) for field, v in zip(fields, values, strict=True)
    ]


def _inserted(instance: Model, pk, using: str) -> None:
    setattr(instance, instance._meta.pk.attname, pk)
    instance._state.adding = False
    instance._state.db = using


def _insert_compile(instance: Model, fields: list, using: str) -> str:
    """The INSERT … RETURNING of ``instance``'s model, one ``%s`` per field in ``fields``."""
    sql, params = _insert_as_sql(type(instance), fields, [instance], using)
    if len(params) != len(fields) or sql.count("%s") != len(fields) or "RETURNING" not in sql:
        raise RuntimeError(f"Not one plain parameter per field in {sql!r}")
    _insert_sql[type(instance)] = sql
    return sql


def insert_many(instances: list[Model], using: str = "default") -> list[Model]:
    """Insert the new ``instances`` of one model as ``bulk_create`` would (no signals; each
    gets its primary key); on PostgreSQL as one prepared ``INSERT … SELECT * FROM UNNEST``
    whose SQL, the same for any number of rows, is compiled once per model. Whatever Django
    would not insert by ``UNNEST`` (a field with a placeholder of its own, a database default,
    an expression) takes ``bulk_create``, as does every other database."""
    if not instances:
        return instances
    model, meta = type(instances[0]), instances[0]._meta
    connection = connections[using]
    sql = _insert_many_sql.get(model, "")  # "": not compiled yet
    if (
        connection.vendor != "postgresql"
        or len(instances) < 2  # Django compiles one row as VALUES
        or meta.parents
        or list(meta.db_returning_fields) != [meta.pk]
        or sql is None
        or any(instance.pk is not None or type(instance) is not model for instance in instances)
    ):
        return _bulk_create(instances, using)
    for instance in instances:
        instance._prepare_related_fields_for_save(operation_name="bulk_create")
    fields = _inserted_fields(meta)
    if not sql:
        sql = _insert_many_compile(model, fields, instances[:2], using)
        if sql is None:
            return _bulk_create(instances, using)
    columns = [[field.pre_save(instance, True) for instance in instances] for field in fields]
    if any(hasattr(value, "resolve_expression") for column in columns for value in column):
        return _bulk_create(instances, using)
    params = [
        [field.get_db_prep_save(value, connection) for value in column]
        for field, column in zip(fields, columns, strict=True)
    ]
    rows = fetchall_prepared(sql, params, using)
    for instance, (pk,) in zip(instances, rows, strict=True):
        setattr(instance, meta.pk.attname, pk)
        instance._state.adding = False
        instance._state.db = using
    return instances


def _bulk_create(instances: list[Model], using: str) -> list[Model]:
    type(instances[0])._base_manager.using(using).bulk_create(instances)
    return instances


_insert_many_sql: dict[type[Model], str | None] = {}  # None: Django would not use UNNEST


def _insert_many_compile(model: type[Model], fields: list, sample: list, using: str) -> str | None:
    """The ``INSERT … SELECT * FROM UNNEST(%s::type[], …) RETURNING pk`` of ``model``, one
    array parameter per field, as Django compiles it for ``sample`` (two rows); None when
    Django would insert them another way. Compiling runs ``pre_save`` on the sample (the
    caller takes the values after)."""
    sql, params = _insert_as_sql(model, fields, sample, using)
    plain = (
        "UNNEST(" in sql
        and "RETURNING" in sql
        and len(params) == len(fields)
        and sql.count("%s") == len(fields)
    )
    _insert_many_sql[model] = sql if plain else None
    return _insert_many_sql[model]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positions: list[int]  # for each parameter of the SQL, which of the values it is
    compiler: object
    init_list: list[str]
    start: int
    end: int
    populators: list
    converters: dict | None  # the columns' from_db_value converters; None: use results_iter


class CompiledQuery:
    """``build(*values)`` (a queryset of model instances, with ``select_related`` and ``only``
    as needed) for a hot path that runs it again and again with other values.

    ``build`` is called once per thread and connection with ``marks``: values of the right
    types, each distinct, that stand for the parameters; ``first(*values)`` then runs the
    compiled SQL with the real values, as a prepared statement on PostgreSQL, and builds the
    same objects as ``build(*values).first()`` would (without its ordering).
    """

    def __init__(self, build: Callable[..., QuerySet], *marks):
        self.build, self.marks = build, marks
        self._local = threading.local()

    def first(self, *values) -> Model | None:
        compiled = self._compiled()
        compiler = compiled.compiler
        params = [_db_value(compiler.connection, values[index]) for index in compiled.positions]
        rows = fetchall_prepared(compiled.sql, params, compiler.using)
        if not rows:
            return None
        if compiled.converters is None:  # a composite field: Django's own way
            row = next(compiler.results_iter(results=[rows[:1]]))
        elif compiled.converters:  # from_db_value, with the converters found once
            row = next(compiler.apply_converters(rows[:1], compiled.converters))
        else:
            row = rows[0]
        instance = compiler.query.model.from_db(
            compiler.using, compiled.init_list, row[compiled.start : compiled.end]
        )
        for populator in compiled.populators:
            populator.populate(row, instance)
        return instance

    def sql(self, *values) -> tuple[str, list]:
        """The compiled SQL of ``build(*values)`` and its parameters (for a queryset of rows,
        e.g. ``values()``, that the caller runs itself)."""
        compiled = self._compiled()
        connection = compiled.compiler.connection
        return compiled.sql, [_db_value(connection, values[i]) for i in compiled.positions]

    def _compiled(self) -> _Compiled:
        compiled = getattr(self._local, "compiled", None)
        if (
            compiled is not None
            and compiled.compiler.connection is connections[compiled.compiler.using]
        ):
            return compiled
        queryset = self.build(*self.marks)
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        marks = [_db_value(compiler.connection, mark) for mark in self.marks]
        try:
            positions = [marks.index(param) for param in params]
        except ValueError:
            raise RuntimeError(f"A parameter that is no mark in {sql!r}: {params!r}") from None
        klass_info, select = compiler.klass_info, compiler.select
        if klass_info is None:  # rows, not model instances: sql() only
            compiled = _Compiled(sql, positions, compiler, [], 0, 0, [], {})
        else:
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            compiled = _Compiled(
                sql=sql,
                positions=positions,
                compiler=compiler,
                init_list=[column[0].target.attname for column in select[start:end]],
                start=start,
                end=end,
                populators=get_related_populators(klass_info, select, queryset.db),
                converters=_converters(compiler),
            )
        self._local.compiled = compiled
        return compiled


def _converters(compiler) -> dict | None:
    """The converters of the selected columns, which ``results_iter`` finds again at every
    call (about a quarter of the API send's chat lookup under cProfile); None when a column is
    a composite field."""
    fields = [column[0] for column in compiler.select[: compiler.col_count]]
    if compiler.has_composite_fields(fields):
        return None
    return compiler.get_converters(fields)


def _db_value(connection, value):
    """``value`` as the compiled SQL's parameters hold it (UUIDs: hex text without a native
    UUID type)."""
    if isinstance(value, uuid.UUID) and not connection.features.has_native_uuid_field:
        return value.hex
    return value
