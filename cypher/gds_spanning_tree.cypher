// Graph Data Science: the maximum spanning forest of one weight layer of the projected checkpoint $graph
// (gds_project.cypher) under |w|, as `netarchive query persistence` builds it: one maximum spanning tree
// (gds.spanningTree, objective maximum) from the lowest neuron of every component of the layer's
// synapses, their edges and total |w|.
//   netarchive query cypher -f cypher/gds_spanning_tree.cypher --param layer=1
:param graph => 'netarchive';
:param layer => 0;

CALL gds.wcc.stream($graph, {relationshipTypes: ['L' + toString($layer)]}) YIELD nodeId, componentId
WITH componentId, min(nodeId) AS root, count(*) AS size
WHERE size > 1
CALL gds.spanningTree.stats($graph, {
  sourceNode: root, relationshipTypes: ['L' + toString($layer)],
  relationshipWeightProperty: 'strength', objective: 'maximum'
}) YIELD effectiveNodeCount, totalWeight
RETURN count(*) AS trees, sum(effectiveNodeCount - 1) AS edges, sum(totalWeight) AS weight;
