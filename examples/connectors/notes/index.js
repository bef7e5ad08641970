// The notes connector: one action and one polling trigger, written against the sandbox's
// `ctx` (see `durable_connectors::js`). Every request goes through the engine's guarded
// client. The service needs no credential; for one that does, declare `auth` in the
// manifest and pass `auth: true` to `ctx.http.request`: the engine adds the credential, which
// the script never sees.

export const actions = {
  async create_note(input, ctx) {
    const res = await ctx.http.request({
      method: "POST",
      url: `${ctx.baseUrl}/notes`,
      json: { title: input.title, body: input.body ?? "" },
    });
    ctx.log.info("note created", { id: res.json.id });
    return res.json;
  },
};

export const triggers = {
  new_notes: {
    async poll(ctx) {
      const after = ctx.cursor ?? 0;
      const res = await ctx.http.request({
        method: "GET",
        url: `${ctx.baseUrl}/notes?after=${after}`,
        });
      const notes = res.json.notes;
      const last = notes.length > 0 ? notes[notes.length - 1].id : after;
      return { events: notes, cursor: last };
    },
  },
};
