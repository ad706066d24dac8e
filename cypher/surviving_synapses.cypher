// Synapses that survive from level $from to level $to of a run, per weight layer: how many, and how much
// their weights moved (iterative magnitude pruning rewinds and retrains, so weights change too). A synapse
// is (layer, src, dst, ky, kx): for a convolution, the same kernel weight of the same channel pair.
//   netarchive query cypher -f cypher/surviving_synapses.cypher --param run=r1 --param from=0 --param to=3
:param run => 'r1';
:param from => 0;
:param to => 1;

MATCH (a:Neuron {run: $run, level: $from})-[s:SYNAPSE]->(b:Neuron)
MATCH (a2:Neuron {run: $run, level: $to})-[t:SYNAPSE]->(b2:Neuron)
WHERE t.layer = s.layer AND a2.`index` = a.`index` AND b2.`index` = b.`index`
  AND coalesce(t.ky, -1) = coalesce(s.ky, -1) AND coalesce(t.kx, -1) = coalesce(s.kx, -1)
RETURN s.layer AS layer, count(*) AS surviving, avg(abs(t.w - s.w)) AS mean_abs_change,
       sum(CASE WHEN t.w * s.w < 0 THEN 1 ELSE 0 END) AS sign_flips
ORDER BY layer;
