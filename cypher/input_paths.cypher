// The paths from one input pixel (channel, y, x) to the outputs of a chain: every path of surviving
// synapses that carries that pixel to group $depth (the outputs of a chain of $depth weight layers;
// see checkpoint_layers.cypher). Their number grows with the product of the layer degrees, so keep
// $limit small on dense checkpoints. (A residual network's paths also run through CONNECTION edges.)
//   netarchive query cypher -f cypher/input_paths.cypher --param run=r1 --param y=3 --param x=4 --param depth=3
:param run => 'r1';
:param level => 0;
:param channel => 0;
:param y => 0;
:param x => 0;
:param depth => 3;
:param limit => 25;

MATCH path = (p:Neuron {run: $run, level: $level, `group`: 0, channel: $channel, y: $y, x: $x})-[:SYNAPSE*1..10]->(o:Neuron)
WHERE o.`group` = $depth
RETURN path, o.`index` AS output, length(path) AS hops
LIMIT $limit;
