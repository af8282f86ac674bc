"""Placeholder: replaced by the full compiler."""
from ortspuls.sta.errors import BadRequest


class QueryCompiler:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    def filter(self, entity, table, expr):
        raise BadRequest("$filter is not supported yet")

    def order_key(self, entity, table, expr):
        name = expr.segments[0]
        field = entity.field_by_name.get(name)
        if name == "id":
            return table.c.id
        return table.c[field.columns[0]]
