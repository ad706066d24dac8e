// The subgraph around one neuron: every synapse into and out of neuron $neuron of group $neuron_group (a
// convolution's neurons are its channels: one synapse per surviving kernel weight, with its ky, kx).
// In Neo4j Browser this draws the neuron with its in- and out-neighbours; double-click a neighbour
// to expand further.
//   netarchive query cypher -f cypher/neuron_neighbourhood.cypher --param run=r1 --param neuron_group=1 --param neuron=0
:param run => 'r1';
:param level => 0;
:param neuron_group => 1;
:param neuron => 0;

MATCH (n:Neuron {run: $run, level: $level, `group`: $neuron_group, `index`: $neuron})-[s:SYNAPSE]-(m:Neuron)
RETURN n, s, m, m.`group` AS neighbour_group, m.`index` AS neighbour, s.layer AS layer, s.ky AS ky, s.kx AS kx, s.w AS w
ORDER BY neighbour_group, neighbour, ky, kx;
