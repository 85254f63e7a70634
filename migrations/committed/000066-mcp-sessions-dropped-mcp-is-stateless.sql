--! Previous: sha1:827ec35abf318d7614d4b754851621961a387b56
--! Hash: sha1:45a908c45fe87f2fe8e029ea6d6d0d8343634adf
--! Message: MCP sessions dropped: /mcp is stateless

-- /mcp answers every request with a fresh server and keeps no sessions (MCP SDK v2, stateless),
-- so nothing opens, touches or closes rows of sextant_private.mcp_sessions any more (000021).
-- Its functions leave sql/audit.sql; they are dropped here too, with the table.

set local role sextant_owner;

drop function if exists sextant_private.open_mcp_session(uuid, text, text, integer, integer, integer);
drop function if exists sextant_private.touch_mcp_sessions(uuid[], uuid[]);
drop function if exists sextant_private.close_mcp_session(uuid);
drop table if exists sextant_private.mcp_sessions;

reset role;
