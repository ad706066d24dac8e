// The weightless connections of a checkpoint: residual additions (add), concatenations (concat) and
// flattens, as CONNECTION edges between neuron groups (one edge per neuron: channel i -> channel i of the
// sum for an add). A residual block shows up as an add whose source group is not the output of the
// layer just before it: its skip connection.
//   netarchive query cypher -f cypher/skip_connections.cypher --param run=r1 --param level=0
:param run => 'r1';
:param level => 0;

MATCH (a:Neuron {run: $run, level: $level})-[c:CONNECTION]->(b:Neuron)
RETURN c.kind AS kind, a.`group` AS source_group, b.`group` AS target_group, count(*) AS edges
ORDER BY target_group, source_group;
