-- Version 6 once created the integration platform's control-plane tables here. They belong
-- to the `durable-control` crate now, which migrates them itself, so an application that
-- uses only the engine gets no table it does not use and needs no extra role. The version
-- stays taken so that later versions keep their numbers.
SELECT 1;
